"""Building the models targets name (zoo names, factories, files): no graph is read here."""

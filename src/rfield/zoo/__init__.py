"""The receptive-field atlas of torchvision and timm: the sweep that makes it
(:mod:`.sweep`), the stages it records (:mod:`.stages`) and the queries that read it
(:mod:`.atlas`), which import no framework."""

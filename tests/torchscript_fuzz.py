"""Mutations of a real TorchScript archive, each read by rfield: run as a script in a
process of its own (``python torchscript_fuzz.py ARCHIVE N SEED``), since a parser
crash of torch's would end the process rather than raise. Prints a JSON object: the
count of archives read and refused, and any outcome that was neither (an exception
other than rfield's one-line error, or a message of several lines)."""

from __future__ import annotations

import json
import random
import re
import sys
import zipfile

import rfield
from rfield.errors import RfieldError


def mutate(members: dict[str, bytes], rng: random.Random) -> dict[str, bytes]:
    """One change: a number in the code, a line of the code dropped or doubled, a name
    in the code replaced, bytes of a pickle changed."""
    out = dict(members)
    code = [n for n in members if "/code/" in n and n.endswith(".py")]
    pickles = [n for n in members if n.endswith(".pkl")]
    kind = rng.randrange(5)
    if kind < 4 and code:
        name = rng.choice(code)
        text = members[name].decode()
        lines = text.splitlines()
        if kind == 0:
            numbers = list(re.finditer(r"\b\d+\b", text))
            if numbers:
                m = rng.choice(numbers)
                text = text[:m.start()] + rng.choice(["0", "-1", "7", "99999999999"]) + \
                    text[m.end():]
        elif kind == 1 and lines:
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        elif kind == 2 and lines:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        else:
            names = sorted(set(re.findall(r"\b[a-z_]{3,}\b", text)))
            if len(names) > 1:
                a, b = rng.sample(names, 2)
                text = re.sub(rf"\b{a}\b", b, text, count=1)
        out[name] = text.encode()
    elif pickles:
        name = rng.choice(pickles)
        data = bytearray(members[name])
        for _ in range(rng.choice([1, 2, 4])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        out[name] = bytes(data)
    return out


def main(archive: str, n: int, seed: int) -> None:
    with zipfile.ZipFile(archive) as z:
        members = {name: z.read(name) for name in z.namelist()}
    rng = random.Random(seed)
    outcomes: dict = {"read": 0, "refused": 0, "other": []}
    for i in range(n):
        path = f"{archive}.{i % 3}.pt"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in mutate(members, rng).items():
                z.writestr(name, data)
        try:
            rfield.analyze(path, (32, 32)).box()
            outcomes["read"] += 1
        except RfieldError as exc:
            if "\n" in str(exc) or len(str(exc)) > 600:
                outcomes["other"].append(f"long message: {str(exc)[:300]}")
            outcomes["refused"] += 1
        except RecursionError:
            outcomes["other"].append("RecursionError")
        except Exception as exc:  # noqa: BLE001 (the point: anything else is reported)
            outcomes["other"].append(f"{type(exc).__name__}: {str(exc)[:300]}")
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

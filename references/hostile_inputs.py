"""Hostile inputs shared by the suite's fuzz tests (``tests/test_hostile_files.py``)
and the longer run in ``benchmarks/fuzz_inputs.py``: the first lines of real
files, mutated as damaged or hostile files are, and the count of data lines
the decoder must account for.
"""

import os
import re

from hypothesis import strategies as st

from pipelines import nycflights

__all__ = ["CENSUS", "data_lines", "mutated"]

CENSUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                      "shared", "data", "census", "adult.data")
_LINE_END = re.compile(rb"\r*\n|\r")


def _sample(path: str, lines: int) -> bytes:
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(lines))


_SAMPLES = {"flights": _sample(nycflights.default_inputs()[0], 40)}
if os.path.exists(CENSUS):
    _SAMPLES["census"] = _sample(CENSUS, 40)

_NASTY = st.sampled_from([b",", b'"', b"\n", b"\r", b"\r\n", b"\0", b"\xff", b"\xef\xbb\xbf",
                          b" ", b";", b"\t", b"NA", b"?", b",,,,,,,,,,", b"\xe2\x82"])


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    """A real file's first lines with a few edits: bytes inserted, deleted,
    repeated or overwritten, cut off, or a huge field or row of empty fields
    (past Python's csv field limit, past pyarrow's field count); or random bytes."""
    name = draw(st.sampled_from(sorted(_SAMPLES) + ["random"]))
    if name == "random":
        return draw(st.sampled_from(sorted(_SAMPLES))), draw(st.binary(max_size=2000))
    data = bytearray(_SAMPLES[name])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "repeat", "cut", "junk", "wide"]))
        if edit == "wide":
            data[at:at] = draw(st.sampled_from([b"x" * 200_000, b"," * 500_000]))
        elif edit == "insert":
            data[at:at] = draw(_NASTY) * draw(st.integers(1, 50))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 200))]
        elif edit == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 300))] * draw(st.integers(1, 5))
        elif edit == "cut":
            del data[at:]
        else:
            junk = draw(st.binary(min_size=1, max_size=100))
            data[at:at + len(junk)] = junk
    return name, bytes(data)


def data_lines(data: bytes, has_header: bool) -> int:
    """Lines as the decoder counts them: each line end ends one, and a last
    line without one counts too; the header is not a data line."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = len(_LINE_END.findall(data)) + (1 if data and not _LINE_END.search(data[-1:])
                                            else 0)
    return max(lines - 1, 0) if has_header else lines

"""Seed corpus for the decode target: the recorded FreeSWITCH streams cut into frames, so the
fuzzer starts from real ESL instead of having to discover `Content-Length` on its own.

Usage: python3 seed.py <fixtures/esl dir> <corpus dir>. Each seed is one split byte followed by
one frame, or two consecutive frames, as the recordings hold them byte for byte.
"""

import hashlib
import pathlib
import sys


def frames(raw):
    """Split a recorded stream the way the decoder does: headers to a blank line, then the body."""
    at = 0
    while at < len(raw):
        end = raw.find(b"\n\n", at)
        if end < 0:
            return
        length = 0
        for line in raw[at:end].split(b"\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        stop = end + 2 + length
        yield raw[at:stop]
        at = stop


def main():
    src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    seeds = set()
    for path in sorted(src.rglob("*.raw")):
        cut = frames(path.read_bytes())
        previous = b""
        for frame in cut:
            for seed in (frame, previous + frame):
                if len(seed) <= 16384:
                    seeds.add(bytes([len(seed) % 256]) + seed)
            previous = frame
    for seed in seeds:
        (dst / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{len(seeds)} seeds in {dst}")


main()

#!/usr/bin/env python3
"""Deterministic, realistic tag list for the "select from 100k tags" benchmark.

One tag per line. Every program of the benchmark (upkeep, Masterminds/semver, npm semver)
reads the same file, so the seed is fixed and the mix is meant to look like a busy OCI
repository: mostly SemVer with and without a leading `v`, prereleases, build metadata, and the
junk real registries carry (`latest`, `sha-1a2b3c`, dates, two-part versions, cosign `.sig`
tags).

Usage: gen_tags.py OUT [COUNT] [SEED]
"""

import random
import sys


def tag(rng: random.Random) -> str:
    r = rng.random()
    major = min(int(rng.expovariate(1 / 6)), 60)
    minor = rng.randrange(0, 40)
    patch = rng.randrange(0, 30)
    core = f"{major}.{minor}.{patch}"
    if r < 0.45:  # plain release
        return core
    if r < 0.65:  # release with a leading v
        return "v" + core
    if r < 0.77:  # prerelease, with or without v
        kind = rng.choice(["rc", "beta", "alpha", "pre"])
        pre = f"{kind}.{rng.randrange(0, 12)}" if rng.random() < 0.85 else kind
        return rng.choice(["", "v"]) + f"{core}-{pre}"
    if r < 0.83:  # build metadata
        meta = rng.choice(
            [f"build.{rng.randrange(1, 5000)}", f"{rng.randrange(20200101, 20251231)}",
             f"git.{rng.getrandbits(28):07x}"]
        )
        sep = f"-rc.{rng.randrange(1, 5)}" if rng.random() < 0.2 else ""
        return rng.choice(["", "v"]) + f"{core}{sep}+{meta}"
    if r < 0.88:  # cosign signatures and attestations
        suffix = rng.choice([".sig", ".att", ".sbom"])
        return f"sha256-{rng.getrandbits(256):064x}{suffix}"
    if r < 0.92:  # sha-like CI tags
        return rng.choice(["sha-", "main-", "pr-"]) + f"{rng.getrandbits(28):07x}"
    if r < 0.95:  # dates
        return f"{rng.randrange(2019, 2026)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    if r < 0.97:  # two-part and four-part versions, leading zeros: not strict SemVer
        return rng.choice(
            [f"{major}.{minor}", f"v{major}.{minor}", f"{core}.{rng.randrange(0, 9)}",
             f"{major}.0{minor}.{patch}"]
        )
    return rng.choice(["latest", "stable", "main", "edge", "nightly", "dev"])


def main() -> None:
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20240101
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(count):
            f.write(tag(rng) + "\n")


if __name__ == "__main__":
    main()

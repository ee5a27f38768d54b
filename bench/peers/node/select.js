#!/usr/bin/env node
// Peer for the "select the latest allowed version from 100k tags" benchmark: npm `semver`,
// `semver.maxSatisfying(tags, range)` (strict parsing, prereleases excluded unless the range
// names one — the library's defaults).
//
// Usage: node select.js TAGS_FILE RANGE [REPS]
// Prints one JSON object: {"peer", "selected", "median_ms", "runs_ms", "tags"}.
'use strict';

const fs = require('fs');
const semver = require('semver');

function main() {
  const [file, range, repsArg] = process.argv.slice(2);
  if (!file || !range) {
    process.stderr.write('usage: node select.js TAGS_FILE RANGE [REPS]\n');
    process.exit(2);
  }
  const reps = repsArg ? Number.parseInt(repsArg, 10) : 7;
  if (!(reps >= 1)) {
    process.stderr.write(`invalid REPS ${JSON.stringify(repsArg)}\n`);
    process.exit(2);
  }
  const tags = fs.readFileSync(file, 'utf8').split('\n').filter((t) => t !== '');
  if (semver.validRange(range) === null) {
    process.stderr.write(`invalid range ${JSON.stringify(range)}\n`);
    process.exit(1);
  }

  // Warm-up (not timed): lets the JIT compile the hot paths, as the other peers get theirs
  // compiled ahead of time.
  const selected = semver.maxSatisfying(tags, range);
  const runs = [];
  for (let i = 0; i < reps; i++) {
    const start = process.hrtime.bigint();
    const got = semver.maxSatisfying(tags, range);
    runs.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (got !== selected) {
      process.stderr.write('selection changed between runs\n');
      process.exit(1);
    }
  }
  const sorted = [...runs].sort((a, b) => a - b);
  process.stdout.write(
    JSON.stringify({
      peer: `npm semver ${require('semver/package.json').version} (Node ${process.version})`,
      selected,
      median_ms: sorted[Math.floor(sorted.length / 2)],
      runs_ms: runs,
      tags: tags.length,
    }) + '\n',
  );
}

main();

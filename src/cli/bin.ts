#!/usr/bin/env node
// `node dist/src/cli/bin.js` as before: the command itself is bin.cts.
import './bin.cjs';

/** The update modes' server side under a test clock, on SQLite. */
import { SqliteHarness } from './harness.js';
import { modesSuite } from './suite-modes.js';

modesSuite(() => new SqliteHarness());

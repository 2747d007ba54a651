/** Bad input to the update service, on SQLite. */
import { SqliteHarness } from './harness.js';
import { badInputSuite } from './suite-bad-input.js';

badInputSuite(() => new SqliteHarness());

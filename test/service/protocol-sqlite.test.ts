/** The update service's protocol over loopback, on SQLite. */
import { SqliteHarness } from './harness.js';
import { protocolSuite } from './suite-protocol.js';

protocolSuite(() => new SqliteHarness());

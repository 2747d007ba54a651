/** The store suites on SQLite, each test on a fresh file in a temporary directory. */
import { SqliteHarness } from './harness.js';
import { devicesSuite } from './suite-devices.js';
import { fleetSuite } from './suite-fleet.js';
import { releasesSuite } from './suite-releases.js';
import { schemaSuite } from './suite-schema.js';

const make = (): SqliteHarness => new SqliteHarness();
devicesSuite(make);
releasesSuite(make);
fleetSuite(make);
schemaSuite(make);

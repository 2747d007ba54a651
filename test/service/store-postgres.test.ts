/**
 * The store suites on a real PostgreSQL server (COAPFW_TEST_PG), each test
 * on a database of its own. Under CI a missing server fails these tests.
 */
import { describeWithBinaries } from '../../interop/helpers.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';
import { devicesSuite } from './suite-devices.js';
import { fleetSuite } from './suite-fleet.js';
import { releasesSuite } from './suite-releases.js';
import { schemaSuite } from './suite-schema.js';

const make = (): PgHarness => new PgHarness(PG_URL!);
describeWithBinaries('store on PostgreSQL', PG_MISSING, () => {
  devicesSuite(make);
  releasesSuite(make);
  fleetSuite(make);
  schemaSuite(make);
});

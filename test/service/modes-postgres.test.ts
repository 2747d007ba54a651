/** The update modes' server side under a test clock, on PostgreSQL (COAPFW_TEST_PG; fails under CI without it). */
import { describeWithBinaries } from '../../interop/helpers.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';
import { modesSuite } from './suite-modes.js';

describeWithBinaries('update modes on PostgreSQL', PG_MISSING, () => {
  modesSuite(() => new PgHarness(PG_URL!));
});

/** Bad input to the update service, on PostgreSQL (COAPFW_TEST_PG; fails under CI without it). */
import { describeWithBinaries } from '../../interop/helpers.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';
import { badInputSuite } from './suite-bad-input.js';

describeWithBinaries('update service bad input on PostgreSQL', PG_MISSING, () => {
  badInputSuite(() => new PgHarness(PG_URL!));
});

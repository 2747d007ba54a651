/** The update service's protocol over loopback, on PostgreSQL (COAPFW_TEST_PG; fails under CI without it). */
import { describeWithBinaries } from '../../interop/helpers.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';
import { protocolSuite } from './suite-protocol.js';

describeWithBinaries('update service on PostgreSQL', PG_MISSING, () => {
  protocolSuite(() => new PgHarness(PG_URL!));
});

/**
 * The rollout engine on SQLite and on PostgreSQL (COAPFW_TEST_PG; under CI a
 * missing server fails the PostgreSQL half).
 */
import { describe } from 'vitest';
import { describeWithBinaries } from '../../interop/helpers.js';
import { PG_MISSING, PG_URL, PgHarness, SqliteHarness } from './harness.js';
import { rolloutSuite } from './rollout-suite.js';

describe('on SQLite', () => rolloutSuite(() => new SqliteHarness()));
describeWithBinaries('on PostgreSQL', PG_MISSING, () => rolloutSuite(() => new PgHarness(PG_URL!)));

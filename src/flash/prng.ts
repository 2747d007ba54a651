/** The seeded PRNG of fault injection, shared with the impaired transport. */
export { mulberry32 } from '../core/prng.js';

import { describe, expect, it } from 'vitest';
import { CoapfwError, isCoapfwError } from '../../src/errors.js';

describe('CoapfwError', () => {
  it('carries a stable code, the cause and the data a program acts on', () => {
    const cause = new Error('inner');
    const e = new CoapfwError('RESPONSE_CODE', 'fetch: 5.03', { cause, responseCode: 0xa3, maxAge: 7, block: 12, peer: { address: '::1', port: 5683 }, path: '/fw/x' });
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ code: 'RESPONSE_CODE', responseCode: 0xa3, maxAge: 7, block: 12, peer: { address: '::1', port: 5683 }, path: '/fw/x', name: 'CoapfwError' });
    expect(e.cause).toBe(cause);
    expect(new CoapfwError('TIMEOUT', 'x').cause).toBeUndefined();
  });

  it('is recognised through the Symbol.for brand, as from a second copy of the package', () => {
    // A second install has its own class object but the same global symbol.
    const foreign = Object.assign(new Error('other copy'), { code: 'TIMEOUT', [Symbol.for('coapfw.error')]: true });
    expect(foreign instanceof CoapfwError).toBe(true);
    expect(isCoapfwError(foreign, 'TIMEOUT')).toBe(true);
    expect(isCoapfwError(foreign, 'RESET')).toBe(false);
    expect(new Error('plain') instanceof CoapfwError).toBe(false);
    expect(isCoapfwError({ code: 'TIMEOUT' })).toBe(false);
    expect(isCoapfwError(null)).toBe(false);
  });

  it('keeps ordinary instanceof for subclasses', () => {
    class Sub extends CoapfwError {}
    expect(new Sub('TIMEOUT', 'x') instanceof Sub).toBe(true);
    expect(new CoapfwError('TIMEOUT', 'x') instanceof Sub).toBe(false);
    expect(new Sub('TIMEOUT', 'x') instanceof CoapfwError).toBe(true);
  });
});

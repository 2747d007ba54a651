/** `serve --http [HOST:]PORT` (src/cli/serve-ops.ts parseListen): a bare port is loopback, as the help says. */
import { describe, expect, it } from 'vitest';
import { parseListen } from '../../src/cli/serve-ops.js';

describe('serve --http', () => {
  it('takes a bare PORT as loopback, :PORT as every address, and a host or [v6] as given', () => {
    expect(parseListen('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen(':8080')).toEqual({ host: '::', port: 8080 });
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListen('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
  });

  it('refuses what is not [HOST:]PORT', () => {
    for (const bad of ['', 'web', '8080:', '[::1]', '70000']) expect(() => parseListen(bad), bad).toThrow(/--http/);
  });
});

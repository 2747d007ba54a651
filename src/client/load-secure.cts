/**
 * The DTLS client, loaded only for coaps:// (it brings node-dtls-client and
 * our DTLS stack). CommonJS on purpose: `coapfw get` runs as one CommonJS
 * bundle compiled from V8's code cache (src/cli/bin.cts), where a dynamic
 * import() of its own has no loader to call on Node 20; this module is a file
 * of its own, outside the bundle, and its import() is an ordinary one.
 */
function loadSecure(): Promise<typeof import('./secure.js')> {
  return import('./secure.js');
}

export = { loadSecure };

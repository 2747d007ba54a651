'use strict';
// cbor-x loads its native accelerator in a try/catch and falls back to its
// JavaScript decoder when the load fails, as it does here.
throw new Error('cbor-extract is not installed with coapfw: cbor-x decodes in JavaScript');

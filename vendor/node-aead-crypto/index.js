'use strict';
// node-dtls-client uses node:crypto's native AEAD on Node >= 10 and never loads this.
throw new Error('node-aead-crypto is not available: coapfw needs Node >= 20, whose crypto has AES-CCM and AES-GCM');

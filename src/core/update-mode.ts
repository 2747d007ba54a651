/**
 * The three ways a device gets its updates (the automatic-update draft's
 * client-initiated, server-initiated and negotiated modes), one definition
 * for the device agent (`device/agent-wire.ts`) and the update service
 * (`service/model.ts`), which speak them to each other on the wire.
 */
export type UpdateMode = 'client' | 'server' | 'negotiated';
/** Every mode. */
export const UPDATE_MODES: readonly UpdateMode[] = ['client', 'server', 'negotiated'];

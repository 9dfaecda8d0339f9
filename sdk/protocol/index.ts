/** Pure protocol rules shared by the Herald server and both SDKs. No I/O, no Node-only imports. */
export * from './channels';
export * from './messages';
export * from './close-codes';
export * from './signing';
export * from './limits';
export * from './push-rules';

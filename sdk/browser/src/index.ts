/** `@herald/browser`: the browser SDK for Herald (ESM entry). */
export { Herald } from './Herald';
export type { HeraldOptions, ChannelAuthData, UserAuthData } from './options';
export { Channel, type SubscriptionError } from './channels/Channel';
export { PresenceChannel } from './channels/PresenceChannel';
export { Members, type Member } from './channels/Members';
export { EncryptedChannel, type Encryption } from './channels/EncryptedChannel';
export { ConnectionManager, type ConnectionState } from './ConnectionManager';
export { Dispatcher, type EventCallback, type EventMetadata, type GlobalCallback } from './Dispatcher';
export { User, type UserData } from './User';
export { PushClient, PushError, type PushRegisterOptions, type TokenProvider } from './push/PushClient';
export { AuthError } from './auth';
export { reconnectDelay, type BackoffOptions } from './reconnect';
export { VERSION } from './url';

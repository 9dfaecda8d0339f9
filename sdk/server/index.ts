/** `@herald/server`: the Node SDK for Herald. */
export { Herald, type ChannelResult, type ChannelsResult, type UsersResult } from './Herald';
export type { HeraldOptions, Limits } from './options';
export { HeraldInputError, HeraldRequestError, HeraldWebhookError } from './errors';
export type { HeraldResponse } from './request';
export type { ChannelAuthResponse, PresenceChannelData, UserAuthResponse, UserData } from './auth';
export type { BatchEvent, BatchResult, ChannelAttributes, TriggerParams, TriggerResult } from './events';
export { Webhook, type WebhookData, type WebhookEvent, type WebhookRequest, type WebhookToken } from './webhook';
export type { PublishBody, PublishResponse, PublishStatus, TriggerPush, WebNotification, WebPush } from './push';
export { channelSharedSecret, decryptData, encryptData } from './encryption';

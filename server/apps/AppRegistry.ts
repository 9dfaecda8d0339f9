import type { AppOptions } from '../options/Options';

/** The apps this node serves, by id (REST paths) and by key (WebSocket paths, REST `auth_key`). */
export class AppRegistry {
  private readonly ids = new Map<string, AppOptions>();
  private readonly keys = new Map<string, AppOptions>();

  constructor(apps: readonly AppOptions[]) {
    for (const app of apps) {
      this.ids.set(app.id, app);
      this.keys.set(app.key, app);
    }
  }

  byId(id: string): AppOptions | undefined {
    return this.ids.get(id);
  }

  byKey(key: string): AppOptions | undefined {
    return this.keys.get(key);
  }

  all(): AppOptions[] {
    return [...this.ids.values()];
  }
}

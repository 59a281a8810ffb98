import { resolveConfigDir } from "../config/paths.js";
import { openSecretStore, type SecretStore } from "../config/secret-store.js";
import { openSettings, type SettingsStore } from "../config/settings.js";
import { checkServiceUrl } from "../service-url.js";
import { DEFAULT_API_URL, VastClient } from "../vast/api-client.js";
import type { GlobalOptions } from "./context.js";
import { usageError } from "./errors.js";

/**
 * What the control-plane commands share: the config directory, its settings and secrets, and a
 * Vast.ai client with the right key and URL. A flag beats the environment, the environment beats
 * what `init` stored (SPEC.md).
 */
export interface ConfigContext {
  configDir: string;
  settings: SettingsStore;
  secrets: SecretStore;
  env: NodeJS.ProcessEnv;
  /** The API base URL: VAST_API_URL, else the one init used, else Vast.ai's. */
  apiUrl(): string;
  /** The API key, or undefined when there is none anywhere. */
  findApiKey(): string | undefined;
  /** A client with the key; a usage error (exit 2) when no key is configured. */
  client(apiKey?: string): VastClient;
  /** The stored webhook id; a usage error when init has not run. */
  webhookId(): number;
}

export function openConfig(options: GlobalOptions, env: NodeJS.ProcessEnv): ConfigContext {
  const configDir = resolveConfigDir(options.configDir, env);
  const settings = openSettings(configDir);
  const secrets = openSecretStore(configDir, { env });

  const apiUrl = () => {
    const raw = env.VAST_API_URL || settings.read().apiUrl || DEFAULT_API_URL;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw usageError(`VAST_API_URL is not a URL: "${raw}".`);
    }
    const problem = checkServiceUrl(url);
    if (problem) throw usageError(`The Vast.ai API URL ${url.origin} is not usable: ${problem}.`);
    return raw.replace(/\/+$/, "");
  };
  const findApiKey = () => env.VAST_API_KEY || secrets.get("apiKey");

  return {
    configDir,
    settings,
    secrets,
    env,
    apiUrl,
    findApiKey,
    client(apiKey) {
      const key = apiKey ?? findApiKey();
      if (!key) {
        throw usageError(
          "No Vast.ai API key: run `vast-gchat init`, or set VAST_API_KEY.",
          "Create a key at https://cloud.vast.ai/manage-keys/",
        );
      }
      return new VastClient({ apiKey: key, baseUrl: apiUrl() });
    },
    webhookId() {
      const id = settings.read().webhookId;
      if (id === undefined) {
        throw usageError("No webhook is set up here yet.", "Run `vast-gchat init` first.");
      }
      return id;
    },
  };
}

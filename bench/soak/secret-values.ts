import { randomBytes } from "node:crypto";

/**
 * The secrets the suite hands its children: fresh random values with a recognisable prefix, so a
 * leak anywhere in their output is found by a plain substring search, and never a real secret.
 */
export interface SoakSecrets {
  webhookSecret: string;
  /** Given to every `serve` (it has no use for it) and to the commands that call the API. */
  apiKey: string;
  /** A key the local Vast.ai API refuses: error paths must not print it either. */
  refusedApiKey: string;
  chatKey: string;
  chatToken: string;
  /** NGROK_AUTHTOKEN in serve's environment: never printed, never handed to a tunnel child. */
  ngrokAuthtoken: string;
}

const hex = () => randomBytes(16).toString("hex");

export function makeSoakSecrets(): SoakSecrets {
  return {
    webhookSecret: `soakwhsec${hex()}`,
    apiKey: `soakapikey${hex()}`,
    refusedApiKey: `soakbadkey${hex()}`,
    chatKey: `soakchatkey${hex()}`,
    chatToken: `soakchattoken${hex()}`,
    ngrokAuthtoken: `soakngrok${hex()}`,
  };
}

export interface Needle {
  /** What leaked, for the report (never the value). */
  name: string;
  value: string;
}

/**
 * What to look for: each whole value, and each half of its random part (16 hex characters), so
 * a value cut short or printed without its prefix is found too. A mask (`soak…ab12`) shows less.
 */
export function needlesOf(secrets: SoakSecrets): Needle[] {
  const needles: Needle[] = [];
  const named: Array<[string, string]> = [
    ["webhook secret", secrets.webhookSecret],
    ["Vast API key", secrets.apiKey],
    ["refused Vast API key", secrets.refusedApiKey],
    ["Chat key", secrets.chatKey],
    ["Chat token", secrets.chatToken],
    ["NGROK_AUTHTOKEN", secrets.ngrokAuthtoken],
  ];
  for (const [name, value] of named) {
    needles.push({ name, value });
    const random = value.slice(-32);
    needles.push({ name: `${name} (first half)`, value: random.slice(0, 16) });
    needles.push({ name: `${name} (second half)`, value: random.slice(16) });
  }
  return needles;
}

/** The suite prints children's log tails on errors: never with a secret in them. */
export function redactor(secrets: SoakSecrets): (text: string) => string {
  const values = needlesOf(secrets).map((needle) => needle.value);
  return (text) => values.reduce((out, value) => out.split(value).join("[secret]"), text);
}

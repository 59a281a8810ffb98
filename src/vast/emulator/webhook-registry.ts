import { randomBytes } from "node:crypto";
import { MAX_WEBHOOKS_PER_USER, type NotificationType, type Webhook } from "../api-types.js";
import { slugOf } from "../type-selection.js";
import { invalid, webhookNotFound } from "./api-error.js";
import { checkEventTypes, checkName, checkWebhookUrl } from "./webhook-input.js";

/**
 * Every account's webhooks with their secrets, and the rules Vast.ai applies when one is created,
 * changed, deleted or given a new secret. A refused change throws an ApiError and leaves the state
 * as it was. Nothing here knows HTTP: the routes turn what it returns into Vast.ai's replies.
 */
export interface StoredWebhook {
  id: number;
  user_id: number;
  name: string | null;
  webhook_url: string;
  /** Always full keys (`client:low_credit`), however the request named them. */
  event_types: string[];
  /** Unix seconds, as Vast.ai sends them. */
  created_at: number;
  updated_at: number;
  secret: string;
}

export interface WebhookRegistryOptions {
  /** The types a webhook may subscribe to. */
  catalogue: readonly NotificationType[];
  /**
   * How a webhook's types are shown: full keys (`client:low_credit`, the merged spec) or slugs
   * (`low_credit`, the backend's spec). Requests may use either form.
   */
  typeNaming: "key" | "slug";
  /** Whether a URL may be held once across every account, or once within each account. */
  urlUniqueness: "global" | "account";
  /** Tests and the demo register plain-http loopback URLs, which Vast.ai refuses. */
  allowLoopbackHttp: boolean;
  /** Milliseconds clock. */
  now: () => number;
}

export class WebhookRegistry {
  private readonly webhooks = new Map<number, StoredWebhook>();
  private readonly keyOfSlug: ReadonlyMap<string, string>;
  private nextId = 1;

  constructor(private readonly options: WebhookRegistryOptions) {
    this.keyOfSlug = new Map(options.catalogue.map((type) => [slugOf(type.key), type.key]));
  }

  /** What the owner sees of a webhook: everything but the secret, types named as configured. */
  view(webhook: StoredWebhook): Webhook {
    const { secret: _secret, ...rest } = webhook;
    const types = rest.event_types;
    return {
      ...rest,
      event_types: this.options.typeNaming === "slug" ? types.map(slugOf) : [...types],
    };
  }

  /** Every account's webhooks by id, for a test's assertions. */
  all(): Webhook[] {
    return [...this.webhooks.values()].sort((a, b) => a.id - b.id).map((w) => this.view(w));
  }

  ownedBy(userId: number): Webhook[] {
    return [...this.webhooks.values()]
      .filter((webhook) => webhook.user_id === userId)
      .map((webhook) => this.view(webhook));
  }

  /** The live record, secret included: deliveries read its URL and secret at every attempt. */
  get(id: number): StoredWebhook | undefined {
    return this.webhooks.get(id);
  }

  /** The user's webhook, or the 404 a missing one gets: another user's looks missing too. */
  own(userId: number, id: number): StoredWebhook {
    const webhook = this.webhooks.get(id);
    if (!webhook || webhook.user_id !== userId) throw webhookNotFound();
    return webhook;
  }

  create(userId: number, input: Record<string, unknown>): StoredWebhook {
    const webhook_url = checkWebhookUrl(input.webhook_url, this.options.allowLoopbackHttp);
    const event_types = checkEventTypes(input.event_types, this.keyOfSlug);
    const name = checkName(input.name);
    if (this.ownedBy(userId).length >= MAX_WEBHOOKS_PER_USER) {
      throw invalid(`Maximum of ${MAX_WEBHOOKS_PER_USER} webhooks per user`);
    }
    this.refuseRegisteredUrl(userId, webhook_url);
    const at = this.seconds();
    const webhook: StoredWebhook = {
      id: this.nextId++,
      user_id: userId,
      name,
      webhook_url,
      event_types,
      created_at: at,
      updated_at: at,
      secret: newSecret(),
    };
    this.webhooks.set(webhook.id, webhook);
    return webhook;
  }

  /** Changes the fields the input names; at least one of them must be there. */
  update(userId: number, id: number, input: Record<string, unknown>): StoredWebhook {
    const webhook = this.own(userId, id);
    if (!("name" in input) && !("webhook_url" in input) && !("event_types" in input)) {
      throw invalid("At least one of webhook_url, event_types, or name is required");
    }
    // Everything is checked before anything changes, so a refused update changes nothing.
    const changes: Partial<StoredWebhook> = {};
    if ("name" in input) changes.name = checkName(input.name);
    if ("webhook_url" in input) {
      changes.webhook_url = checkWebhookUrl(input.webhook_url, this.options.allowLoopbackHttp);
      this.refuseRegisteredUrl(userId, changes.webhook_url);
    }
    if ("event_types" in input) {
      changes.event_types = checkEventTypes(input.event_types, this.keyOfSlug);
    }
    Object.assign(webhook, changes, { updated_at: this.seconds() });
    return webhook;
  }

  delete(userId: number, id: number): void {
    this.own(userId, id);
    this.webhooks.delete(id);
  }

  /** Published: "the prior secret is invalidated immediately". */
  rotateSecret(userId: number, id: number): StoredWebhook {
    const webhook = this.own(userId, id);
    // Deliveries read the secret at each attempt, so the old one is never used again.
    webhook.secret = newSecret();
    webhook.updated_at = this.seconds();
    return webhook;
  }

  /**
   * Published for create and update. Whether a webhook's own URL counts is unpublished: the
   * strictest reading (it does) is taken, so a client must not PUT the URL a webhook already has.
   */
  private refuseRegisteredUrl(userId: number, url: string): void {
    const taken = [...this.webhooks.values()].some(
      (webhook) =>
        webhook.webhook_url === url &&
        (this.options.urlUniqueness === "global" || webhook.user_id === userId),
    );
    if (taken) throw invalid("This webhook URL is already registered");
  }

  private seconds(): number {
    return this.options.now() / 1000;
  }
}

function newSecret(): string {
  return randomBytes(32).toString("hex");
}

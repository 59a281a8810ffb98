/**
 * What we know about each notification type, keyed by the slug Vast.ai sends as `notif_type`
 * (docs/vast-api.md). The full list exists only at run time; an unknown slug still gets a
 * readable name and the neutral look.
 */
export type Severity = "warning" | "info";
export type TypeGroup = "Account" | "Billing" | "Instance" | "Host" | "Other";

export interface EventTypeInfo {
  slug: string;
  /** The key used when subscribing, e.g. `client:low_credit`. */
  key: string;
  name: string;
  group: TypeGroup;
  severity: Severity;
  /** The console page a reader most likely wants next. */
  consoleUrl: string;
}

const CONSOLE = "https://cloud.vast.ai";
const PAGES = {
  instances: `${CONSOLE}/instances/`,
  billing: `${CONSOLE}/billing/`,
  account: `${CONSOLE}/account/`,
  keys: `${CONSOLE}/manage-keys/`,
  machines: `${CONSOLE}/host/machines/`,
} as const;

type Entry = [
  slug: string,
  context: "client" | "host",
  name: string,
  group: TypeGroup,
  severity: Severity,
  page: string,
];

const KNOWN: Entry[] = [
  ["low_credit", "client", "Low credit", "Billing", "warning", PAGES.billing],
  ["billing_failed", "client", "Billing failed", "Billing", "warning", PAGES.billing],
  ["payment_receipt", "client", "Payment receipt", "Billing", "info", PAGES.billing],
  ["outbid", "client", "Instance outbid", "Instance", "warning", PAGES.instances],
  ["instance_created", "client", "Instance created", "Instance", "info", PAGES.instances],
  ["instance_started", "client", "Instance started", "Instance", "info", PAGES.instances],
  ["instance_stopped", "client", "Instance stopped", "Instance", "warning", PAGES.instances],
  ["instance_offline", "client", "Instance offline", "Instance", "warning", PAGES.instances],
  ["instance_online", "client", "Instance online", "Instance", "info", PAGES.instances],
  ["upcoming_downtime", "client", "Upcoming downtime", "Instance", "warning", PAGES.instances],
  ["machine_offline", "host", "Machine offline", "Host", "warning", PAGES.machines],
  ["machine_online", "host", "Machine online", "Host", "info", PAGES.machines],
  ["machine_error", "host", "Machine error", "Host", "warning", PAGES.machines],
  ["maintenance_scheduled", "host", "Maintenance scheduled", "Host", "warning", PAGES.machines],
  ["webhook_test", "client", "Webhook test", "Account", "info", PAGES.account],
];

export const KNOWN_EVENT_TYPES: ReadonlyMap<string, EventTypeInfo> = new Map(
  KNOWN.map(([slug, context, name, group, severity, consoleUrl]) => [
    slug,
    { slug, key: `${context}:${slug}`, name, group, severity, consoleUrl },
  ]),
);

/** Words in an unknown slug that signal trouble, so a new kind of alert still stands out. */
const WARNING_WORDS = /(fail|error|offline|low|outbid|stop|down|expir|suspend|overdue|maintenance)/;

/** Accepts a slug (`low_credit`) or a full key (`client:low_credit`). */
export function describeEventType(typeOrKey: string | undefined): EventTypeInfo {
  const slug = (typeOrKey ?? "").replace(/^(client|host):/, "") || "notification";
  const known = KNOWN_EVENT_TYPES.get(slug);
  if (known) return known;
  const words = slug.replace(/[_\-.]+/g, " ").trim();
  const isHost = typeOrKey?.startsWith("host:") ?? false;
  return {
    slug,
    key: `${isHost ? "host" : "client"}:${slug}`,
    name: words.charAt(0).toUpperCase() + words.slice(1),
    group: isHost ? "Host" : "Other",
    severity: WARNING_WORDS.test(slug) ? "warning" : "info",
    consoleUrl: isHost ? PAGES.machines : PAGES.account,
  };
}

/** The group a catalogue entry is shown under, as Vast.ai's own settings page groups them. */
export function groupOfType(type: {
  context: string;
  category?: string | null | undefined;
}): TypeGroup {
  if (type.context === "host") return "Host";
  const category = (type.category ?? "").toLowerCase();
  if (category.includes("billing") || category.includes("payment")) return "Billing";
  if (category.includes("instance")) return "Instance";
  return "Account";
}

export const GROUP_ORDER: readonly TypeGroup[] = [
  "Account",
  "Billing",
  "Instance",
  "Host",
  "Other",
];

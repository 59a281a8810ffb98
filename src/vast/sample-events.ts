import { randomUUID } from "node:crypto";
import { describeEventType } from "./event-types.js";

/**
 * Realistic sample notifications, for `trigger` (and later `demo`): what Vast.ai might send for
 * each type. Vast.ai publishes only the low-credit text; the others follow its style.
 */
const SAMPLES: Record<string, { subject: string; message: string }> = {
  low_credit: {
    subject: "Warning - Your Vast.ai Credit Balance Is Getting Low",
    message: "Your Vast.ai balance is below your configured threshold.",
  },
  billing_failed: {
    subject: "Action required - Your Vast.ai payment failed",
    message: "We could not charge your payment method. Update it to keep your instances running.",
  },
  payment_receipt: {
    subject: "Your Vast.ai payment receipt",
    message: "We received your payment of $25.00. Thank you!",
  },
  outbid: {
    subject: "Instance 1234567 was outbid",
    message: "Your interruptible instance 1234567 was outbid and has been paused.",
  },
  instance_created: {
    subject: "Instance 1234567 created",
    message: "Your instance 1234567 (1x RTX 4090) was created.",
  },
  instance_started: {
    subject: "Instance 1234567 started",
    message: "Your instance 1234567 is now running.",
  },
  instance_stopped: {
    subject: "Instance 1234567 stopped",
    message: "Your instance 1234567 was stopped. Storage charges still apply.",
  },
  instance_offline: {
    subject: "Instance 1234567 is offline",
    message: "We lost contact with instance 1234567. Its host may be having trouble.",
  },
  instance_online: {
    subject: "Instance 1234567 is back online",
    message: "Instance 1234567 is reachable again.",
  },
  upcoming_downtime: {
    subject: "Upcoming downtime for instance 1234567",
    message: "The host of instance 1234567 has scheduled maintenance in 24 hours.",
  },
  machine_offline: {
    subject: "Machine 98765 is offline",
    message: "Your machine 98765 stopped reporting. Rentals on it are paused.",
  },
  machine_online: {
    subject: "Machine 98765 is back online",
    message: "Your machine 98765 is reporting again.",
  },
  machine_error: {
    subject: "Machine 98765 reported an error",
    message: "Machine 98765 failed its self-test: GPU 2 is not responding.",
  },
  maintenance_scheduled: {
    subject: "Maintenance scheduled for machine 98765",
    message: "Maintenance for machine 98765 is scheduled for tomorrow 02:00 UTC.",
  },
  webhook_test: {
    subject: "Vast.ai webhook test",
    message: "This is a test notification from Vast.ai.",
  },
};

export interface SampleOverrides {
  subject?: string | undefined;
  message?: string | undefined;
  userId?: number | undefined;
  now?: Date | undefined;
}

/** A body shaped exactly like a Vast.ai delivery (docs/vast-api.md), with a fresh event id. */
export function sampleEvent(typeOrKey: string, overrides: SampleOverrides = {}) {
  const { slug, name } = describeEventType(typeOrKey);
  const sample = SAMPLES[slug] ?? { subject: name, message: `A sample ${name} notification.` };
  return {
    event_id: randomUUID().replaceAll("-", ""),
    user_id: overrides.userId ?? 123,
    notif_type: slug,
    subject: overrides.subject ?? sample.subject,
    message: overrides.message ?? sample.message,
    timestamp: (overrides.now ?? new Date()).getTime() / 1000,
  };
}

import { TOKEN_PATTERN } from "./soak-events.js";

/**
 * What reached Chat, per event: how many accepted messages carried each token. A message counts
 * a token once however often it shows it (a digest has it in its text and in its card).
 */
export class ChatLedger {
  private readonly copies = new Map<string, number>();
  private readonly requestIds = new Set<string>();
  /** Messages Chat accepted. */
  messages = 0;
  /** Messages that carried at least one event Chat already had: a repeated post. */
  repeatPosts = 0;
  /** Of those, how many repeated a requestId Chat had accepted (real Chat could drop them). */
  repeatPostsWithKnownRequestId = 0;

  record(bodyText: string, requestId: string | null): void {
    this.messages++;
    const tokens = new Set(bodyText.match(TOKEN_PATTERN) ?? []);
    let repeat = false;
    for (const token of tokens) {
      const before = this.copies.get(token) ?? 0;
      if (before > 0) repeat = true;
      this.copies.set(token, before + 1);
    }
    if (repeat) {
      this.repeatPosts++;
      if (requestId !== null && this.requestIds.has(requestId)) {
        this.repeatPostsWithKnownRequestId++;
      }
    }
    if (requestId !== null) this.requestIds.add(requestId);
  }

  copiesOf(token: string): number {
    return this.copies.get(token) ?? 0;
  }

  missing(tokens: Iterable<string>): string[] {
    const missing: string[] = [];
    for (const token of tokens) if (!this.copies.has(token)) missing.push(token);
    return missing;
  }

  /** Among `tokens`: events that arrived more than once, the extra copies, the most copies of one. */
  duplicates(tokens: Iterable<string>): { events: number; extraCopies: number; maxCopies: number } {
    let events = 0;
    let extraCopies = 0;
    let maxCopies = 0;
    for (const token of tokens) {
      const copies = this.copies.get(token) ?? 0;
      maxCopies = Math.max(maxCopies, copies);
      if (copies > 1) {
        events++;
        extraCopies += copies - 1;
      }
    }
    return { events, extraCopies, maxCopies };
  }
}

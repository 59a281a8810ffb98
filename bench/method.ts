import type { BenchConfig } from "./config.js";
import { int } from "./format.js";
import type { ReportInput } from "./report-input.js";

/** How each figure was taken, for the report: a number without its method cannot be checked. */

function startupMethod(input: ReportInput): string[] {
  const { config } = input;
  return [
    `- Start-up: \`node bin/vast-gchat.js --help\` and a bare \`node -e 0\` (the floor for any Node CLI), with the same environment and output to /dev/null, wall time from spawn to exit; ${input.startup?.cli.tool === "bench loop" ? `timed by the bench's own loop (hyperfine was not installed): ${config.startupWarmupRuns} untimed run(s) of each first, then ${config.startupRuns} timed runs of each taking turns, the order swapped every round` : `timed by hyperfine (\`--shell=none\`, ${config.startupWarmupRuns} warm-up run(s), then ${config.startupRuns} timed runs of each)`}. The ratio is median ÷ median. The adapters' own start-up: \`vast-gchat serve\` and \`python3 vast_google_chat_adapter.py\`, from spawn until GET /health answers 200, polled every 5 ms.`,
  ];
}

function loadMethod(input: ReportInput): string[] {
  const { config } = input;
  return [
    `- Load: each request is a signed delivery as Vast.ai sends it (a fresh X-Vast-Timestamp and signature, a unique event_id from sampleEvent, five event types in turn), POSTed over keep-alive connections, one request per connection at a time, to 127.0.0.1 (the fixed-rate run through an undici Pool, the saturation runs through autocannon). The generator signs each body before its clock starts.`,
    `- Sessions: for each fake Chat latency (${config.chatDelaysMs.map((d) => `${d} ms`).join(", ")}), each adapter gets a fresh process, store and fake Chat that answers every post after that delay. A session: start, 1 s idle (peak RSS "idle"), a ${config.warmupSeconds} s unmeasured saturated warm-up, ${input.load?.plan.fixedRate === false ? "" : "the fixed-rate run, "}the saturation run (peak RSS "after the load runs" is read right after it; before each run the bench waits, up to 30 s, until the adapter has stopped posting to Chat, so the tutorial's backlog from one run is not measured in the next)${input.load?.plan.kill === false ? "" : `, and for vast-gchat a kill -9 after ${config.killAfterSeconds} s of a further saturated run`}. Repeat r runs the ceiling, then every latency's sessions, ours before the tutorial's, so slow moments of the shared machine fall on all of them; the table shows the median of the ${config.repeats} repeat(s) with the range in brackets, and ratios of medians.`,
    `- Fixed rate: open loop, request i leaves at start + i/${config.rate} s whatever the earlier ones are doing (up to ${int(config.openConnections)} connections and ${int(config.maxInFlight)} requests in flight, beyond which a send is skipped and counted as not sent). Ack latency runs from handing the request to the connection pool to the end of the answer; the "from the scheduled send" row adds the generator's own lateness (free of coordinated omission). A request with no answer within ${config.requestTimeoutMs / 1000} s counts as infinite latency ("no answer").`,
    `- Saturation: closed loop driven by autocannon (its setupRequest signs each delivery), ${config.concurrency} requests always in flight for ${config.saturationSeconds} s; accepted events/s counts 2xx answers within that window; answers still in flight when it closes are dropped. The tutorial's server speaks HTTP/1.0 (a new connection for every request) and listens with Python's default backlog of 5, which probably explains the requests it never answers at 64 in flight; that is how the tutorial's adapter behaves, and the same generator drives the bare server far faster. The ceiling is the same warm-up and run against a bare node:http server that reads the body and answers 200 {"ok":true} (bench/bare-server.ts), measured once per repeat.`,
    "- Generator headroom: the bench process's CPU time (process.cpuUsage) per request sent while driving the bare server gives the most it could send on one core; its CPU share in each run shows whether it was near that limit. The fake Chat lives in the bench process too, so while the tutorial's adapter posts for every request its share includes the fake Chat's work. Adapter and bare server CPU come from /proc/<pid>/stat (all threads).",
    "- Peak RSS is VmHWM from /proc/<pid>/status (the highest resident set since the process started, all threads).",
    `- Delivery to Chat is not what the load runs measure (the burst does): vast-gchat acknowledges once the event is committed to SQLite and posts at most one message a second per space, oldest first, keeping the rest queued; the tutorial posts inside each request, so its ack latency includes Chat's.`,
    "- kill -9: SIGKILL to vast-gchat in the middle of a saturated run, then its SQLite file is opened read-only and every event id that got a 2xx during the session (warm-up, fixed, saturation, kill run) must be in `events`. The connection resets the kill causes are expected.",
  ];
}

function burstMethod(config: BenchConfig): string[] {
  return [
    `- Burst: ${int(config.burstEvents)} signed deliveries with unique subjects (\`burst 0001\`…, five event types in turn), all queued at once and sent with at most ${config.burstConcurrency} requests in flight, into one Chat space whose fake allows ${config.burstChatRate} message(s) a second: a post less than ${1000 / config.burstChatRate} ms after the last one it accepted for that space gets 429 RESOURCE_EXHAUSTED; an accepted one is answered after ${config.burstChatDelayMs} ms. A fresh adapter and a fresh fake Chat for every run; vast-gchat runs \`serve\` with its defaults (1 message/s per space, digests on). Runs: ${config.burstRepeats} of vast-gchat, ${config.tutorialBurstRepeats} of the tutorial's (each of its runs takes up to ${config.burstTutorialCapSeconds} s, because Chat lets through about one of its messages a second).`,
    `- Vast.ai's retries, emulated the same way for both adapters (Vast.ai does not publish its schedule, so this is an assumption): an attempt answered 408, 429 or 5xx, or without an answer within ${config.requestTimeoutMs / 1000} s, or failing to connect, is sent again (the same body, a fresh X-Vast-Timestamp and signature, X-Vast-Delivery-Attempt + 1) after min(${config.burstMaxDelayMs / 1000} s, ${config.burstInitialDelayMs / 1000} s × 2^(n−1)) with equal jitter from a seeded generator, up to ${config.burstMaxAttempts} attempts per event; then the sender gives up on it. A 2xx or any other 4xx ends an event's deliveries.`,
    `- Visible: a subject counts once it appears in a message the fake Chat accepted: in \`fallbackText\` for vast-gchat (a digest lists every event), in \`text\` for the tutorial. The time runs from the first send to the last subject's appearance. Lost: not visible when the run ended. vast-gchat's runs are capped at ${config.burstOursCapSeconds} s; the tutorial's at ${config.burstTutorialCapSeconds} s, or earlier once its sender has nothing left to send (it posts inside the request, so nothing can reach Chat after that).`,
    "- Posts are every request the fake Chat received, 429s included. The tutorial answers 502 on each 429 and relies on the retries above.",
  ];
}

export function method(input: ReportInput): string[] {
  return [
    ...(input.startup ? startupMethod(input) : []),
    ...(input.load ? loadMethod(input) : []),
    ...(input.burst ? burstMethod(input.config) : []),
  ];
}

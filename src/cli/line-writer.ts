import { Writable } from "node:stream";

/**
 * A stream that hands each complete line written to it to `onLine`, for code that reads another
 * part's output line by line (the pretty log, the demo's init and cleanup). A last line without
 * its newline is handed over when the stream ends.
 */
export function lineWriter(onLine: (line: string) => void): Writable {
  let pending = "";
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const lines = (pending + chunk.toString()).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) if (line) onLine(line);
      callback();
    },
    final(callback) {
      if (pending) onLine(pending);
      pending = "";
      callback();
    },
  });
}

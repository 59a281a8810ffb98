import { describe, expect, it } from "vitest";
import { maskChatUrl, maskSecret } from "../../src/config/mask.js";

const KEY = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI";
const TOKEN = "q7Zk2Xw9-Yv3LmNpQrS8tU1vWxYz0aBcDeFgHiJkLmN%3D";
const CHAT_URL = `https://chat.googleapis.com/v1/spaces/AAAAbCdEfGh/messages?key=${KEY}&token=${TOKEN}`;

describe("maskSecret", () => {
  it("keeps the first and last four characters of a long secret", () => {
    expect(maskSecret("abcd1234567890efghijklmnopqrstuvwxyz")).toBe("abcd…wxyz");
  });

  it("shows only two at each end of a medium secret", () => {
    expect(maskSecret("ab12345678kl")).toBe("ab…kl");
    expect(maskSecret("ab34567890123456789012yz")).toBe("ab34…12yz");
  });

  it("hides short secrets entirely, and their length", () => {
    expect(maskSecret("")).toBe("••••");
    expect(maskSecret("x")).toBe("••••");
    expect(maskSecret("hunter2abcd")).toBe("••••");
  });

  it("never shows more than a third of any secret, nor the secret itself", () => {
    for (let length = 0; length <= 100; length++) {
      const secret = Array.from({ length }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
      const masked = maskSecret(secret);
      const shown = masked.replace(/[…•]/g, "").length;
      expect(shown * 3).toBeLessThanOrEqual(length);
      if (length > 0) expect(masked).not.toContain(secret);
    }
  });

  it("does not split a character made of two code units", () => {
    expect(maskSecret("😀bcdefghijklmnopqrstuvwx😀")).toBe("😀bcd…vwx😀");
  });
});

describe("maskChatUrl", () => {
  it("keeps the space id and hides the key and token", () => {
    const masked = maskChatUrl(CHAT_URL);
    expect(masked).toBe("https://chat.googleapis.com/v1/spaces/AAAAbCdEfGh/messages?key=…&token=…");
    expect(masked).not.toContain(KEY);
    expect(masked).not.toContain(TOKEN);
    expect(masked).not.toContain(KEY.slice(0, 8));
  });

  it("hides every query value, whatever its name, and a bare query part", () => {
    expect(maskChatUrl(`${CHAT_URL}&threadKey=abc&secretish`)).toBe(
      "https://chat.googleapis.com/v1/spaces/AAAAbCdEfGh/messages?key=…&token=…&threadKey=…&…",
    );
  });

  it("hides a user name, password and fragment", () => {
    const masked = maskChatUrl("https://user:pa55word@chat.example.com/hook#frag-secret");
    expect(masked).toBe("https://…@chat.example.com/hook#…");
    expect(masked).not.toContain("pa55word");
    expect(masked).not.toContain("frag-secret");
  });

  it("masks long path segments on a host that is not Google Chat's", () => {
    const token = "Zx81kLmN0pQrStUvWxYz12345678abcd";
    const masked = maskChatUrl(`https://hooks.example.com/api/webhooks/12345/${token}`);
    expect(masked).toBe("https://hooks.example.com/api/webhooks/12345/Zx81…abcd");
    expect(masked).not.toContain(token);
  });

  it("keeps a loopback preview address readable", () => {
    expect(maskChatUrl("http://127.0.0.1:8790/v1/spaces/LOCAL/messages?key=k&token=t")).toBe(
      "http://127.0.0.1:8790/v1/spaces/LOCAL/messages?key=…&token=…",
    );
  });

  it("masks input that is not a URL as a plain secret", () => {
    expect(maskChatUrl("not a url but a long secret value")).toBe("not …alue");
    expect(maskChatUrl("short")).toBe("••••");
    expect(maskChatUrl(`mailto:${KEY}`)).not.toContain(KEY);
  });
});

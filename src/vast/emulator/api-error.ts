/**
 * An API answer that is not a success. The server sends it in Vast.ai's error shape,
 * `{success: false, error: <code>, msg: <message>}`, under its status; every refusal the emulator
 * makes is one of these, so a handler only has to throw.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A request Vast.ai refuses as invalid: 400 `invalid_args`, with the published message. */
export function invalid(message: string): ApiError {
  return new ApiError(400, "invalid_args", message);
}

/** Also the answer for another user's webhook, so an id reveals nothing about other accounts. */
export function webhookNotFound(): ApiError {
  return new ApiError(404, "not_found", "Webhook not found");
}

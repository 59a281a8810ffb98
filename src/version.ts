/**
 * The package's version, for `--version` and the User-Agent of every Vast.ai call. A test keeps it
 * equal to package.json's (reading that file at run time would cost `--help` a file read).
 */
export const VERSION = "0.1.0";

export const USER_AGENT = `vast-gchat/${VERSION}`;

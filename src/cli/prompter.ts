import { CliError, ExitCode, usageError } from "./errors.js";

/**
 * Questions for the set-up wizard. On a terminal they are @inquirer prompts; without one (CI,
 * scripts) a question with a default takes it under --yes, and any other missing answer is an
 * error naming the flag that supplies it, never a prompt that hangs.
 */
export interface Choice<T> {
  name: string;
  value: T;
  description?: string;
}

export interface CheckboxChoice<T> extends Choice<T> {
  checked: boolean;
  /** Choices are shown under their group's heading. */
  group: string;
}

export interface Prompter {
  readonly interactive: boolean;
  secret(message: string, flag: string): Promise<string>;
  text(
    message: string,
    options: {
      flag: string;
      default?: string;
      validate?: (value: string) => string | true;
      /** How the answer is shown on screen (a secret URL, masked). */
      show?: (value: string) => string;
    },
  ): Promise<string>;
  confirm(message: string, options: { flag: string; default: boolean }): Promise<boolean>;
  choose<T>(
    message: string,
    options: { flag: string; choices: Choice<T>[]; default: T },
  ): Promise<T>;
  checkbox<T>(
    message: string,
    options: { flag: string; choices: CheckboxChoice<T>[]; min?: number },
  ): Promise<T[]>;
}

export interface PrompterOptions {
  interactive: boolean;
  yes: boolean;
  /** Said on Ctrl+C at a prompt; every command asks all its questions before changing anything. */
  interrupted?: string;
}

export function createPrompter(options: PrompterOptions): Prompter {
  const { interactive, yes } = options;
  /** Ctrl+C inside a prompt: leave quietly with 130. */
  const asked = async <T>(question: Promise<T>): Promise<T> => {
    try {
      return await question;
    } catch (error) {
      if ((error as Error).name === "ExitPromptError") {
        throw new CliError(options.interrupted ?? "Interrupted; nothing was changed.", {
          exitCode: ExitCode.Interrupted,
        });
      }
      throw error;
    }
  };
  const missing = (message: string, flag: string) =>
    usageError(`No answer for "${message}" (no terminal to ask on).`, `Pass ${flag}.`);
  const fallback = <T>(message: string, flag: string, value: T | undefined): T => {
    if (yes && value !== undefined) return value;
    throw missing(
      message,
      yes || value === undefined ? flag : `${flag} (or --yes for the default)`,
    );
  };
  const prompts = () => import("@inquirer/prompts");

  return {
    interactive,
    async secret(message, flag) {
      if (!interactive) throw missing(message, flag);
      const { password } = await prompts();
      return asked(
        password({ message, mask: "•", validate: (v) => (v.trim() ? true : "Required") }),
      );
    },
    async text(message, { flag, default: value, validate, show }) {
      if (!interactive || (yes && value !== undefined)) {
        const answer = fallback(message, flag, value);
        const check = validate?.(answer) ?? true;
        if (check !== true) throw usageError(check);
        return answer;
      }
      const { input } = await prompts();
      return asked(
        input({
          message,
          ...(value === undefined ? {} : { default: value }),
          ...(validate ? { validate } : {}),
          ...(show ? { transformer: (typed: string) => show(typed) } : {}),
        }),
      );
    },
    async confirm(message, { flag, default: value }) {
      if (!interactive) return fallback(message, flag, yes ? value : undefined);
      if (yes) return value;
      const { confirm } = await prompts();
      return asked(confirm({ message, default: value }));
    },
    async choose(message, { flag, choices, default: value }) {
      if (!interactive || yes) return fallback(message, flag, value);
      const { select } = await prompts();
      return asked(select({ message, choices, default: value }));
    },
    async checkbox(message, { flag, choices, min = 1 }) {
      if (!interactive || yes) {
        return fallback(
          message,
          flag,
          choices.filter((choice) => choice.checked).map((choice) => choice.value),
        );
      }
      const { checkbox, Separator } = await prompts();
      const grouped: Array<(typeof choices)[number] | InstanceType<typeof Separator>> = [];
      let group: string | undefined;
      for (const choice of choices) {
        if (choice.group !== group) grouped.push(new Separator(`— ${choice.group} —`));
        group = choice.group;
        grouped.push(choice);
      }
      return asked(
        checkbox({
          message,
          choices: grouped.map((item) =>
            item instanceof Separator
              ? item
              : { name: item.name, value: item.value, checked: item.checked },
          ),
          pageSize: 20,
          validate: (chosen) => (chosen.length >= min ? true : `Choose at least ${min}.`),
        }),
      );
    },
  };
}

/**
 * A whole-number command-line option (`--name`) of the project's measuring commands
 * (`npm run test:scale`, `npm run bench:floor`): its value, or exit code 2 with a message naming it.
 */
export function wholeOption(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

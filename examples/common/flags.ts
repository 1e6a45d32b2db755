/** Checked numeric command-line flags for the examples' entry scripts. */

/** Parses a flag's value as a number within `min..max` (an integer unless `integer` is false). */
export function numberFlag(
  value: string | undefined,
  name: string,
  { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true } = {},
): number {
  const parsed = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(parsed)) {
    throw new RangeError(`--${name}: expected a number, got ${JSON.stringify(value)}`);
  }
  if ((integer && !Number.isInteger(parsed)) || parsed < min || parsed > max) {
    throw new RangeError(
      `--${name}: expected ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${value}`,
    );
  }
  return parsed;
}

/** Parses a flag that must be one of `choices`. */
export function choiceFlag<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
): T {
  if (value === undefined || !(choices as readonly string[]).includes(value)) {
    throw new RangeError(`--${name}: expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

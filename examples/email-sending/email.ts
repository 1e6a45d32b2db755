/**
 * The "send email" job: what POST /send accepts, what goes through the queue, and the checks both
 * ends apply (the web handler refuses bad requests; the worker refuses bad messages so a poison
 * message ends in the dead-letter queue instead of crashing anything).
 */

/** What a caller posts to /send. */
export interface EmailRequest {
  to: string;
  subject: string;
  body: string;
}

/** What the queue carries: the request plus an id that survives retries (dedupe on it). */
export interface EmailJob extends EmailRequest {
  id: string;
  /** When the web handler accepted it, ms since the Unix epoch. */
  requestedAtMs: number;
}

/** Queue names and settings of this example. */
export const EMAIL_QUEUE = 'emails';
export const EMAIL_DLQ = 'emails.dlq';

/** RFC 5321's limit on an address path; the subject and body limits keep one job well under 1 MiB. */
const MAX_ADDRESS_CHARS = 254;
const MAX_SUBJECT_CHARS = 998;
const MAX_BODY_CHARS = 100_000;

/** Returns what is wrong with a posted value, or null when it is a valid EmailRequest. */
export function emailRequestProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const { to, subject, body } = value as Record<string, unknown>;
  if (typeof to !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(to) || to.length > MAX_ADDRESS_CHARS) {
    return '"to" must be an email address';
  }
  if (typeof subject !== 'string' || subject.length > MAX_SUBJECT_CHARS) {
    return `"subject" must be a string of at most ${MAX_SUBJECT_CHARS} characters`;
  }
  if (typeof body !== 'string' || body.length > MAX_BODY_CHARS) {
    return `"body" must be a string of at most ${MAX_BODY_CHARS} characters`;
  }
  return null;
}

/** The job in a message body, or null when the body is not one (a poison message). */
export function asEmailJob(value: unknown): EmailJob | null {
  if (emailRequestProblem(value) !== null) return null;
  const { id, requestedAtMs } = value as Record<string, unknown>;
  if (typeof id !== 'string' || id === '' || typeof requestedAtMs !== 'number') return null;
  return value as EmailJob;
}

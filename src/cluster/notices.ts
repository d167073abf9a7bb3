/**
 * What the cluster layer tells the operator while it works (a retry in progress, a setting it ignores). Silent
 * by default so the library never writes to a terminal it does not own; the CLI routes notices to stderr.
 * Notices never carry secrets: callers pass redacted text.
 */
export type NoticeSink = (message: string) => void;

let sink: NoticeSink = () => {};

export function onClusterNotice(fn: NoticeSink): void {
  sink = fn;
}

export function clusterNotice(message: string): void {
  sink(message);
}

/** Progress notes in long loops: at most one per interval, so a 3 a.m. console stays readable. */
export function every(intervalMs = 10_000): (note: () => void) => void {
  let last = 0;
  return (note) => {
    if (Date.now() - last < intervalMs) return;
    last = Date.now();
    note();
  };
}

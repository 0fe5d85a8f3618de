/** Quoting happens here and nowhere else. */
export function quote(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_\/.,:=@%+-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function quoteAll(values: readonly string[]): string {
  return values.map(quote).join(' ');
}

/** A here-document body that cannot end early: base64 never contains the marker. */
export function base64Heredoc(command: string, content: Buffer | string, marker = 'VZSB_EOF'): string {
  const b64 = Buffer.from(content).toString('base64').replace(/(.{76})/g, '$1\n');
  return `${command} <<'${marker}'\n${b64}\n${marker}`;
}

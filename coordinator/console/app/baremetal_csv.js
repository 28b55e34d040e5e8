// The CSV of a bare-metal import, read in the page for its preview (the API reads the same
// file again and is the judge of every row).

/** @typedef {{line: number, cells: string[]}} CsvRow */

export const HEADER = "Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label";

/**
 * The records of a CSV text (RFC 4180: quoted fields, doubled quotes, CRLF or LF), each with
 * its 1-based line in the file, blank lines left out.
 * @param {string} text
 * @returns {CsvRow[]}
 */
export function parseCsv(text) {
  /** @type {CsvRow[]} */
  const rows = [];
  /** @type {string[]} */
  let cells = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  const end = () => {
    cells.push(cell);
    if (cells.length > 1 || cells[0] !== "") rows.push({ line: start, cells });
    cells = [];
    cell = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        cell += c;
      }
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      cells.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      end();
      line++;
      start = line;
    } else cell += c;
  }
  if (cell !== "" || cells.length) end();
  return rows;
}

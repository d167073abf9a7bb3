// Runs on every document that is copied; return null to drop the document (it is counted in the report).
export default function transform(doc, meta) {
  const { stock, ...rest } = doc;
  return { ...rest, price: Number(doc.price), quantity: stock };
}

// The catalog: a fixed table of prices.
const PRICES = { apple: 3, pear: 4 };

export function lookupPrice(sku) {
  const price = PRICES[sku];
  if (price === undefined) {
    throw new Error(`unknown SKU '${sku}'`);
  }
  return price;
}

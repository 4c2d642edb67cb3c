/**
 * Every item of a paged SSM list, read through the SDK's own paginator
 * (`paginateListCommandInvocations`, `paginateDescribeInstanceInformation`, ...), which follows
 * `NextToken` until the last page. Used alike by the deploy functions and the operator command.
 */

/**
 * Every item on every page `pages` yields, in order. To retry a list (`withRetries`), make the
 * paginator inside the retried operation: a retry then reads the list again from its first page,
 * whole and consistent, since a paginator keeps no place to resume from after an error.
 */
export async function everyPage<Page, Item>(pages: AsyncIterable<Page>, items: (page: Page) => readonly Item[] | undefined): Promise<Item[]> {
  const found: Item[] = [];
  for await (const page of pages) found.push(...(items(page) ?? []));
  return found;
}

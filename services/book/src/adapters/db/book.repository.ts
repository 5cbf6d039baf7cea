import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { Book, type BookProps } from '../../domain/book.ts';
import type { BookRepository, TakeCopyResult } from '../../application/ports.ts';
import type { BookTables } from './schema.ts';

type Row = Selectable<BookTables['books']>;

const columns = ['book_id', 'book_name', 'author', 'isbn', 'quantity', 'copies'] as const;

function toProps(row: Pick<Row, (typeof columns)[number]>): BookProps {
  return { bookId: row.book_id, bookName: row.book_name, author: row.author, isbn: row.isbn, quantity: row.quantity, copies: row.copies };
}

export class KyselyBookRepository implements BookRepository {
  readonly #db: Kysely<BookTables> | Transaction<BookTables>;

  constructor(db: Kysely<BookTables> | Transaction<BookTables>) {
    this.#db = db;
  }

  async insert(book: Omit<BookProps, 'bookId'>): Promise<BookProps> {
    const row = await this.#db
      .insertInto('books')
      .values({ book_name: book.bookName, author: book.author, isbn: book.isbn, quantity: book.quantity, copies: book.copies })
      .returning(columns)
      .executeTakeFirstOrThrow();
    return toProps(row);
  }

  async find(bookId: number): Promise<BookProps | null> {
    const row = await this.#db.selectFrom('books').select(columns).where('book_id', '=', bookId).executeTakeFirst();
    return row ? toProps(row) : null;
  }

  async findByName(bookName: string): Promise<BookProps | null> {
    const row = await this.#db.selectFrom('books').select(columns).where('book_name', '=', bookName).orderBy('book_id').limit(1).executeTakeFirst();
    return row ? toProps(row) : null;
  }

  async insertIfNameAbsent(book: Omit<BookProps, 'bookId'>): Promise<BookProps | null> {
    // Names are not unique in a catalogue, so no unique key: a transaction-scoped advisory lock
    // on the name makes the check and the insert one step for concurrent callers.
    await sql`SELECT pg_advisory_xact_lock(hashtext(${`bstore.books.name:${book.bookName}`}))`.execute(this.#db);
    if (await this.findByName(book.bookName)) return null;
    return this.insert(book);
  }

  async findForUpdate(bookId: number): Promise<Book | null> {
    const row = await this.#db.selectFrom('books').select(columns).where('book_id', '=', bookId).forUpdate().executeTakeFirst();
    return row ? Book.restore(toProps(row)) : null;
  }

  async save(book: Book): Promise<void> {
    const p = book.props;
    await this.#db
      .updateTable('books')
      .set({ book_name: p.bookName, author: p.author, isbn: p.isbn, quantity: p.quantity, copies: p.copies, updated_at: new Date() })
      .where('book_id', '=', p.bookId)
      .execute();
  }

  async takeCopy(bookId: number): Promise<TakeCopyResult> {
    const row = await this.#db
      .updateTable('books')
      .set({ quantity: sql`quantity - 1`, updated_at: new Date() })
      .where('book_id', '=', bookId)
      .where('quantity', '>', 0)
      .returning(columns)
      .executeTakeFirst();
    if (row) return { kind: 'taken', book: toProps(row) };
    const book = await this.find(bookId);
    return book ? { kind: 'out-of-stock', book } : { kind: 'not-found' };
  }

  async returnCopy(bookId: number): Promise<BookProps> {
    const row = await this.#db
      .updateTable('books')
      .set({ quantity: sql`quantity + 1`, updated_at: new Date() })
      .where('book_id', '=', bookId)
      .returning(columns)
      .executeTakeFirstOrThrow();
    return toProps(row);
  }

  async list(query: { q?: string; limit: number; offset: number }): Promise<{ items: BookProps[]; total: number }> {
    let base = this.#db.selectFrom('books');
    if (query.q) {
      const pattern = `%${query.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      base = base.where((eb) => eb.or([eb(sql`lower(book_name)`, 'like', pattern), eb(sql`lower(coalesce(author, ''))`, 'like', pattern)]));
    }
    const [items, count] = await Promise.all([
      base.select(columns).orderBy('book_id').limit(query.limit).offset(query.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: items.map(toProps), total: Number(count.n) };
  }
}

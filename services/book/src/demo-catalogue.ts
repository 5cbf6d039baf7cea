import type { NewBook } from './domain/book.ts';

/** The demo catalogue of embedded mode: varied stock, including one book with none and one with a single copy. */
export const DEMO_BOOKS: readonly NewBook[] = [
  { bookName: '채식주의자 (The Vegetarian)', author: '한강 Han Kang', isbn: '978-8936433598', quantity: 5 },
  { bookName: '소년이 온다 (Human Acts)', author: '한강 Han Kang', isbn: '978-8936434120', quantity: 3 },
  { bookName: '82년생 김지영 (Kim Jiyoung, Born 1982)', author: '조남주 Cho Nam-joo', isbn: '978-8937473135', quantity: 4 },
  { bookName: '아몬드 (Almond)', author: '손원평 Sohn Won-pyung', isbn: '978-8936456788', quantity: 2 },
  { bookName: '불편한 편의점 (The Inconvenient Convenience Store)', author: '김호연 Kim Ho-yeon', isbn: '978-8925588735', quantity: 6 },
  { bookName: '토지 1 (Land, vol. 1)', author: '박경리 Park Kyong-ni', isbn: '978-8934972464', quantity: 1 },
  { bookName: '엄마를 부탁해 (Please Look After Mom)', author: '신경숙 Shin Kyung-sook', isbn: '978-8936433673', quantity: 0 },
  { bookName: 'Designing Data-Intensive Applications', author: 'Martin Kleppmann', isbn: '978-1449373320', quantity: 2 },
  { bookName: 'Domain-Driven Design', author: 'Eric Evans', isbn: '978-0321125217', quantity: 4 },
  { bookName: 'Building Microservices', author: 'Sam Newman', isbn: '978-1492034025', quantity: 3 },
  { bookName: 'Release It!', author: 'Michael T. Nygard', isbn: '978-1680502398', quantity: 2 },
  { bookName: 'Enterprise Integration Patterns', author: 'Gregor Hohpe, Bobby Woolf', isbn: '978-0321200686', quantity: 3 },
];

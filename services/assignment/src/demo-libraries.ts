import type { LibraryProps, NewLibrary } from './domain/library.ts';
import type { AssignmentService } from './main.ts';

/** The branches embedded mode starts with: four public libraries in Seoul. */
export const DEMO_LIBRARIES: readonly NewLibrary[] = [
  { name: '강남도서관 (Gangnam Library)', address: '서울특별시 강남구 선릉로116길 45 (Gangnam-gu, Seoul)' },
  { name: '종로도서관 (Jongno Library)', address: '서울특별시 종로구 사직로9길 15-14 (Jongno-gu, Seoul)' },
  { name: '마포도서관 (Mapo Library)', address: '서울특별시 마포구 성산로 128 (Mapo-gu, Seoul)' },
  { name: '송파도서관 (Songpa Library)', address: '서울특별시 송파구 동남로 263 (Songpa-gu, Seoul)' },
];

/**
 * Inserts the branches that do not exist yet (matched by name); safe to call at every start.
 * Returns the branches it inserted.
 *
 * @example
 * const assignment = await createAssignmentService(deps);
 * await seedLibraries(assignment);
 */
export function seedLibraries(service: AssignmentService, libraries: readonly NewLibrary[] = DEMO_LIBRARIES): Promise<LibraryProps[]> {
  return service.operations.ensureLibraries.execute(libraries);
}

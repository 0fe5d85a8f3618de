/** The students of a sandbox lab (one lab-made key for all of them). */
export const SANDBOX_STUDENTS: readonly string[] = ['student1', 'student2', 'student3'];

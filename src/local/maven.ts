/** One artifact from Maven Central into a directory (`mvn dependency:copy`); the error names the artifact. */
import { runChecked } from './proc.js';

export async function mavenCopy(artifact: string, outDir: string): Promise<void> {
  await runChecked(
    'mvn',
    ['-q', '-B', 'dependency:copy', `-Dartifact=${artifact}`, `-DoutputDirectory=${outDir}`],
    {
      cwd: outDir,
    },
  ).catch((err: Error) => {
    throw new Error(`could not fetch ${artifact} from Maven: ${err.message}`);
  });
}
